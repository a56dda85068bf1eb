"""The Greeter example service: its proto, generated messages and shared wiring."""
