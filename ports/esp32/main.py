"""ESP32 node (any ESP32: classic, S2, S3, C3, C6): join Wi-Fi, then serve
the sensor node app on config.COAP_PORT; reset the board when Wi-Fi cannot
be joined or the node stops.

`make deploy PORT=/dev/ttyUSB0 BOARD=esp32` copies it to the board with the
package, the node app and your config.py. The temperature is the chip's
internal sensor.
"""
import esp32
import machine

import config
import node_main
import wifi

# The classic ESP32 reports °F through raw_temperature(); the S2, S3, C3 and
# C6 have no raw_temperature() but mcu_temperature() in °C.
_mcu_c = getattr(esp32, "mcu_temperature", None)
_raw_f = getattr(esp32, "raw_temperature", None)


def read_c():
    if _mcu_c is not None:
        return _mcu_c()
    if _raw_f is not None:
        return (_raw_f() - 32) / 1.8
    raise OSError("this ESP32 firmware has no temperature sensor call")


def join():
    return wifi.join(config.WIFI_SSID, config.WIFI_PASSWORD,
                     getattr(config, "WIFI_ATTEMPTS", 5), backoff_ms=getattr(config, "WIFI_BACKOFF_MS", 2000))


node_main.start(config, read_c, join=join, reset=machine.reset,
                watchdog=lambda ms: machine.WDT(timeout=ms))
