"""The management REST API: one API class per operation, `<Entity><Action>Api`."""
