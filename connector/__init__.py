"""crmsync: keep every B2B contact's lifecycle stage right inside the CRMs."""

__version__ = "0.1.0"
