"""Email authentication (SPEC F10): domains proven by a mailed code, their SPF and DKIM
records checked in DNS, and mail from an authenticated domain signed with its DKIM key."""
