"""HubSpot CRM: loyalty points as a numeric contact property (absolute writes, webhooks)."""
