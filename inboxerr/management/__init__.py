"""What the project's management commands share."""

# The most days a command takes for an age or a lifetime: a hundred years. Much more and a date
# reckoned from today leaves the calendar (years 1 to 9999), which would end in a traceback.
MAX_DAYS = 36_500
