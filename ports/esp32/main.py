"""ESP32 node: join Wi-Fi, then serve the sensor node app on port 5683.

Copy coapy_micro/ (or its .mpy files: `make board` builds them into
build/board/), ports/common/node_app.py, ports/common/wifi.py and this file
to the board, with WIFI_SSID / WIFI_PASSWORD set in a secrets.py next to it.
The temperature is the chip's internal sensor.
"""
import esp32

import node_app
import secrets
import wifi

ip = wifi.connect(secrets.WIFI_SSID, secrets.WIFI_PASSWORD)
node_app.run((ip, 5683), read_c=lambda: (esp32.raw_temperature() - 32) / 1.8)
