"""Notifications: Apprise transport (send, mask) and message rendering."""
