"""Operating the service: the schema migrations runner, the demo scheme, the OpenAPI export."""
