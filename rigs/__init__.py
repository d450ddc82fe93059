"""Real parts and misbehaving fakes shared by the tests and the benchmarks: a mosquitto
broker on a free port, a test PKI, the station served in a thread, a fault-injecting TCP
proxy, a printer listener, an ESC/POS decoder, generated label photos, a sync rig."""
