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

# Settings for what comes later go below, e.g. a Resource Directory to
# register with:
# RD_URI = "coap://192.0.2.10"
