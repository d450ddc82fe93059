"""Getting records to central: the MQTT publisher that drains the outbox."""
