"""People who sign in at the station (issue 12)."""
