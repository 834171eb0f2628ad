"""Messages: what a touchpoint says (templates, context, SMS segments) and its signed links."""
