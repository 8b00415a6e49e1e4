"""Raspberry Pi Pico W node: join Wi-Fi, then serve the sensor node app on
config.COAP_PORT; reset the board when Wi-Fi cannot be joined or the node
stops.

`make deploy PORT=/dev/ttyACM0 BOARD=rp2` copies it to the board with the
package, the node app and your config.py. The temperature is the RP2040's
internal sensor (ADC channel 4).
"""
import machine

import config
import node_main
import wifi

_sensor = machine.ADC(4)


def read_c():
    volts = _sensor.read_u16() * 3.3 / 65535
    return 27 - (volts - 0.706) / 0.001721  # RP2040 datasheet, section 4.9.5


def join():
    return wifi.join(config.WIFI_SSID, config.WIFI_PASSWORD,
                     getattr(config, "WIFI_ATTEMPTS", 5), backoff_ms=getattr(config, "WIFI_BACKOFF_MS", 2000))


node_main.start(config, read_c, join=join, reset=machine.reset,
                watchdog=lambda ms: machine.WDT(timeout=ms))
