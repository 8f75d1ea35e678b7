"""People: members of accounts, invitations, passwords, sign-in sessions and second factors."""
