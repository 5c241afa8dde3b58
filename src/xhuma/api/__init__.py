"""The HTTP face of the switch: the retail-facing interfaces, health and the OpenAPI document."""
