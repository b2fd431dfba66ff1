"""Ways in from what the LAN already runs: webhooks (Alertmanager, Grafana, generic JSON),
e-mail to SMS, and inbound rules that forward or answer SMS. Each is off until configured
(the webhook routes answer 404 "not configured" for a JSON hook without a table) and imports
its libraries only when it is used."""
