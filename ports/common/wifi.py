"""Join a Wi-Fi network as a station (MicroPython boards with `network`).

    import wifi
    ip = wifi.connect(secrets.WIFI_SSID, secrets.WIFI_PASSWORD)

Used by ports/esp32/main.py and ports/rp2/main.py; copy it to the board next
to them.
"""
import network
import time


def connect(ssid, password, timeout_ms=20000):
    """Connect the station interface to `ssid` (already connected: nothing
    to do) and return the board's IP address as a str. Raises OSError if no
    connection comes within timeout_ms."""
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(ssid, password)
        start = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
                raise OSError("Wi-Fi connection timed out")
            time.sleep_ms(200)
    return wlan.ifconfig()[0]
