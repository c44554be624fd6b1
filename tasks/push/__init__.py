"""Offline push: providers (APNs, FCM), delivery rules and daily counters."""
