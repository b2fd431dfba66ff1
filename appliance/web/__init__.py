"""HTTP APIs. Each dialect logs in through `login`, parses into `model.Submission`s, hands them
to `intake.submit_batch` and renders its own answer; no dialect talks to a modem."""
