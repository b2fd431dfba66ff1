"""Channels to web and e-mail SMS providers: HTTP Client, HTTP Server and SMTP connections.

Each module here is one channel kind of the Ozeki seed (000): `http_client.py` sends through a
provider's URL template, `http_server.py` listens at BASEURL for inbound SMS and reports,
`smtp.py` sends each SMS as an e-mail. Their configuration (`settings.py`) uses the seed's
keys, lower case, so the config file and `configdriver` share one vocabulary.
"""
