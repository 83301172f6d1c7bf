"""Email insights (SPEC F9, decision 057): opens and clicks of mail sent from crmail, the
rates of templates, each contact's best time to be written to, and mail sent later.

- ``tokens``: the HMAC-signed tokens of the open pixel and the tracked links.
- ``tracking``: the copy of a message its recipients get (pixel, links rewritten), and
  its ``MessageInsight`` row; ``switch``: whether mail is tracked, and why not in words.
- ``scanners``: who fetched a pixel or followed a link: a coarse client kind, and whether
  it was probably a mail-security scanner or a privacy proxy (data in ``data/``).
- ``recording``: an open or a click, recorded after the answer went out.
- ``queries``: a message's opens and clicks, templates' rates, the hour-of-week profile.
- ``scheduling`` + ``tasks``: mail sent later, through the job queue.
"""
