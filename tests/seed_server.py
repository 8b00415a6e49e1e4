"""A CoAP server written only with coapy's connection API.

This is the loop the README shows: bind an EndPoint, call process(), answer
each request. A CON request gets its response piggybacked on the ACK
(rx.ack(response)); a NON request gets a NON response (ep.send). Everything
else (retransmission, duplicates, pings, junk) is the EndPoint's business.

    GET  /<path>  -> 2.05 "hello <path>" (text/plain)
    POST /<path>  -> 2.04 with the length of the request payload, in decimal
    other methods -> 4.05

Used by the real-socket tests (interop with libcoap and aiocoap, loss,
abuse), each running serve() in a background thread.
"""
from coapy_micro import codes
from coapy_micro._compat import ticks_diff, ticks_ms
from coapy_micro.connection import Message
from coapy_micro.options import UriPath


def answer(request):
    """The response to one request, of the type its request calls for."""
    kind = Message.ACK if request.transaction_type == Message.CON else Message.NON
    if request.code == codes.GET:
        segments = [o.value for o in request.findOptions(UriPath)]
        if any(not isinstance(s, str) for s in segments):  # not UTF-8
            return Message(kind, codes.BAD_REQUEST, token=request.token)
        text = ("hello " + "/".join(segments)).encode()
        if len(text) > 1024:  # the answer must fit in one datagram (max_message_size)
            return Message(kind, codes.BAD_REQUEST, token=request.token)
        return Message(kind, codes.CONTENT, text, token=request.token,
                       content_format=codes.TEXT_PLAIN)
    if request.code == codes.POST:
        return Message(kind, codes.CHANGED, str(len(request.payload)), token=request.token)
    return Message(kind, codes.METHOD_NOT_ALLOWED, token=request.token)


def serve(ep, max_requests=None, seconds=10, handled=None, stop=None):
    """Answer requests on `ep` until `max_requests` have been answered,
    `seconds` have passed or `stop()` is true. Returns the requests answered
    (appended to `handled` as they come, when a list is given)."""
    if handled is None:
        handled = []
    start = ticks_ms()
    while ticks_diff(ticks_ms(), start) < seconds * 1000:
        if max_requests is not None and len(handled) >= max_requests:
            break
        if stop is not None and stop():
            break
        rx = ep.process(100)
        if rx is None or not 1 <= rx.message.code <= 31:
            continue  # time is up, or not a request (a client's business)
        handled.append(rx.message)
        response = answer(rx.message)
        if rx.message.transaction_type == Message.CON:
            rx.ack(response)  # piggybacked on the ACK
        else:
            ep.send(response, rx.remote)  # a NON request gets a NON response
    return handled
