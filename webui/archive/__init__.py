"""Export everything / import everything: one .zip of the data dir's user content.

``layout`` says what an archive holds and which member names are allowed, ``data`` which parts of
a data dir are user content, ``export`` writes an archive, ``restore`` checks one and imports it.
The format is described in docs/user-guide.md ("Backup: export and import everything").
"""
