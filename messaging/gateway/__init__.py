"""The WebSocket gateway: socket handling (consumer), the frame protocol, the per-process
connection registry, the downstream loop and the background loops of the embedded mode."""
