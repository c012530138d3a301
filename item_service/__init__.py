"""item_service: the only owner of item_bank.db, served over gRPC."""
