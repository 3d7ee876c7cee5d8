"""`labctl doctor`: whether the lab is fit, from every device and service at once.

``checks`` holds the checks (stable ids DOC001...) and their pure verdicts;
``gather`` asks the devices and services, in parallel and within a bound, through
the drivers and the sessions the status commands already use.
"""
