"""`wakeward review`: the owner's review page, the clip store in the browser (app.py: the
Starlette app and its server; picture.py: a clip's waveform and spectrogram; cli.py: the
command's options; templates/ and static/: the pages)."""
