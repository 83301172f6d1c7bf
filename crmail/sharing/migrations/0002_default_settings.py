"""Existing users start with the default setting: public to everyone, own domain excluded."""

from django.db import migrations

# A copy, as migrations must not follow later changes of the application code.
PUBLIC_MAIL_DOMAINS = {
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "zoho.com",
    "zohomail.com", "fastmail.com", "proton.me", "protonmail.com", "gmx.com", "gmx.net",
    "gmx.de", "web.de", "mail.com", "yandex.com", "yandex.ru",
}  # fmt: skip


def create_defaults(apps, schema_editor):  # type: ignore[no-untyped-def]
    User = apps.get_model("people", "User")
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    SharingSetting = apps.get_model("sharing", "SharingSetting")
    ExcludedDomain = apps.get_model("sharing", "ExcludedDomain")
    for user in User.objects.filter(sharing__isnull=True):
        setting = SharingSetting.objects.create(user=user, mode="public", audience="everyone")
        addresses = [user.email, *Mailbox.objects.filter(owner=user).values_list("email", flat=True)]
        domains: list[str] = []
        for address in addresses:
            domain = (address or "").rpartition("@")[2].strip().lower()
            if domain and domain not in PUBLIC_MAIL_DOMAINS and domain not in domains:
                domains.append(domain)
        ExcludedDomain.objects.bulk_create(
            [ExcludedDomain(setting=setting, domain=d) for d in domains]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("sharing", "0001_sharing_settings_and_audit"),
        ("mailboxes", "0002_sent_messages"),
    ]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
