"""footfall-alerts: rules over the live MQTT state, notifications once, with recovery."""
