"""The Wix side: the Loyalty/Contacts REST client, its auth, its errors and webhook verification."""
