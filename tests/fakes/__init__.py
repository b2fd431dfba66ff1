"""Test doubles that are not our own code under another name: the SMSC is smpp34's server."""
