"""Raspberry Pi Pico W node: join Wi-Fi, then serve the sensor node app.

Copy coapy_micro/ (or its .mpy files: `make board` builds them into
build/board/), ports/common/node_app.py, ports/common/wifi.py and this file
to the board, with WIFI_SSID / WIFI_PASSWORD set in a secrets.py next to it.
The temperature is the RP2040's internal sensor (ADC channel 4).
"""
import machine

import node_app
import secrets
import wifi

_sensor = machine.ADC(4)


def read_c():
    volts = _sensor.read_u16() * 3.3 / 65535
    return 27 - (volts - 0.706) / 0.001721  # RP2040 datasheet, section 4.9.5


node_app.run((wifi.connect(secrets.WIFI_SSID, secrets.WIFI_PASSWORD), 5683), read_c=read_c)
