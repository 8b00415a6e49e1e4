"""Join a Wi-Fi network as a station (MicroPython boards with `network`).

    import wifi
    ip = wifi.join(config.WIFI_SSID, config.WIFI_PASSWORD)

Used by ports/esp32/main.py and ports/rp2/main.py (make deploy copies it
to the board next to them).
"""
import network
import time


def address(wlan):
    """The interface's IPv4 address as a str. ipconfig() is the call from
    MicroPython 1.24 on (ifconfig() is deprecated in 1.29); older firmware
    only has ifconfig()."""
    ipconfig = getattr(wlan, "ipconfig", None)
    if ipconfig is not None:
        return ipconfig("addr4")[0]
    return getattr(wlan, "ifconfig")()[0]


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
                wlan.disconnect()  # stop trying, so the next attempt starts afresh
                raise OSError("Wi-Fi connection timed out")
            time.sleep_ms(200)
    return address(wlan)


def join(ssid, password, attempts=5, timeout_ms=20000, backoff_ms=2000, log=print):
    """connect(), tried `attempts` times, waiting backoff_ms after the first
    failure and twice as long after each next one (at most a minute). The
    IP address, or the last OSError once every attempt failed (a board's
    main.py then resets the board)."""
    wait_ms = backoff_ms
    for attempt in range(1, attempts + 1):
        try:
            return connect(ssid, password, timeout_ms)
        except OSError as e:
            log("wifi: attempt %d of %d to join %r failed: %s" % (attempt, attempts, ssid, e))
            if attempt == attempts:
                raise
        time.sleep_ms(wait_ms)
        wait_ms = min(wait_ms * 2, 60000)
    raise OSError("Wi-Fi: no attempts")  # attempts < 1
