"""The local bridge: an HTTP JSON service on 127.0.0.1 that restores photos for the GIMP
plug-in (and any other program of this user that holds the token).

Depends on core only. ``server`` holds the jobs and ``bridge.json``; ``handler`` the HTTP
side (routing and answering); ``reading`` reads a request under its deadline and limits;
``parsing`` parses its body; ``errors`` holds ``HTTPError``; ``info`` reads and writes
``bridge.json``. The desktop app hosts it through ``app/bridge_host.py``; ``instructir serve``
runs it headless.
"""
