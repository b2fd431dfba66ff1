"""HTTP APIs. Each dialect parses into `compose.Submission`, calls the journal, and renders
its own answer; no dialect talks to a modem."""
