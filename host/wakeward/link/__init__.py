"""The link group (../shared/notes/house.md): what talks to the speakers and to the owner's
other programs about them. New rooms go here: satellite (Home Assistant over Wyoming).
receiver, serialreceiver, pairing and devicerequests join when they are next changed."""
