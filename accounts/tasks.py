# Accounts has no background jobs yet; password-reset mail is sent inline by Django's view.
