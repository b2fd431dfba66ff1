"""sms-appliance: an SMS gateway appliance for Raspberry Pi-class boards."""

__version__ = "0.1.0"
