"""Protocol buffers of GoChat: Kafka envelopes and gRPC services (generated code is committed)."""
