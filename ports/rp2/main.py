"""Raspberry Pi Pico W node: join Wi-Fi, then serve the sensor node app.

Copy coapy_micro/ (or its .mpy files), ports/common/node_app.py and this file
to the board, with WIFI_SSID / WIFI_PASSWORD set in a secrets.py next to it.
The temperature is the RP2040's internal sensor (ADC channel 4).
"""
import machine
import network
import time

import node_app
import secrets

_sensor = machine.ADC(4)


def read_c():
    volts = _sensor.read_u16() * 3.3 / 65535
    return 27 - (volts - 0.706) / 0.001721  # RP2040 datasheet, section 4.9.5


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


node_app.run((connect(), 5683), read_c=read_c)
