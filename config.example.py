# The node's settings. Copy this file to config.py (git ignores it), fill it
# in, and `make deploy` copies it to the board next to main.py.

# The Wi-Fi network the node joins (ESP32, Pico W; unused on the unix port).
WIFI_SSID = "your-network"
WIFI_PASSWORD = "your-password"

# The UDP port the node serves CoAP on (5683 is CoAP's default).
COAP_PORT = 5683

# Joining Wi-Fi: attempts before the board resets, and the wait after the
# first failure (doubled after each next one, at most a minute).
WIFI_ATTEMPTS = 5
WIFI_BACKOFF_MS = 2000

# A hardware watchdog resets the board if the node's loop stalls this long
# (0: off). Once started it cannot be stopped, so leave it off while you
# work at the REPL. The Pico W allows at most 8388 ms.
WATCHDOG_MS = 0

# A Resource Directory (RFC 9176) to register with, e.g. the host running
# `coapy gateway`, which then observes the node's sensors and keeps their
# readings. Without a path ("coap://192.0.2.10", "coap://gateway.local:5683")
# the node asks that host where registrations go; with one
# ("coap://192.0.2.10/rd") it registers there. Leave it out (or None) for no
# registration.
# RD_URI = "coap://192.0.2.10"

# The node's endpoint name at the RD (at most 63 bytes; unique among the
# RD's nodes). Default: "coapy-" and the chip's unique id in hex.
# RD_EP = "greenhouse-1"

# The registration's lifetime in seconds: the node refreshes it after three
# quarters of it; the RD forgets a node that has not for this long.
RD_LT_S = 300
