"""What the API answers, built from a ServedAtlas (or a live capture) and returned as plain data.

One module per router; the routers parse a request, call one function here and send what it
returns. Nothing here knows HTTP, so each answer is testable without a server.
"""
