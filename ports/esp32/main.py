"""ESP32 node: join Wi-Fi, then serve the sensor node app on port 5683.

Copy coapy_micro/ (or its .mpy files), ports/common/node_app.py and this file
to the board, with WIFI_SSID / WIFI_PASSWORD set in a secrets.py next to it.
The temperature is the chip's internal sensor.
"""
import esp32
import network
import time

import node_app
import secrets


def connect(timeout_ms=20000):
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(secrets.WIFI_SSID, secrets.WIFI_PASSWORD)
        start = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
                raise OSError("Wi-Fi connection timed out")
            time.sleep_ms(200)
    return wlan.ifconfig()[0]


ip = connect()
node_app.run((ip, 5683), read_c=lambda: (esp32.raw_temperature() - 32) / 1.8)
