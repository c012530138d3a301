"""session_service: the only owner of user_data.db (accounts, sessions, responses, scores), served over gRPC."""
