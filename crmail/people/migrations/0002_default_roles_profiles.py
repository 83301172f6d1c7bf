"""The starting organisation: a role hierarchy, two profiles and private modules."""

from django.db import migrations

ROLES = [("CEO", None), ("Manager", "CEO"), ("Sales Representative", "Manager")]
MODULES = ("leads", "contacts", "accounts", "deals")
ACTIONS = ["view", "create", "edit", "delete"]


def seed(apps, schema_editor):
    Role = apps.get_model("people", "Role")
    Profile = apps.get_model("people", "Profile")
    ModuleDefault = apps.get_model("people", "ModuleDefault")
    made = {}
    for name, parent in ROLES:
        role, _ = Role.objects.get_or_create(name=name, defaults={"parent": made.get(parent)})
        parent_path = made[parent].path if parent else "/"
        role.path = f"{parent_path}{role.pk}/"
        role.save(update_fields=["path"])
        made[name] = role
    full = {m: list(ACTIONS) for m in MODULES}
    Profile.objects.get_or_create(
        name="Administrator",
        defaults={"is_admin": True, "mail_integration": True, "permissions": full,
                  "description": "Sees and changes every record and setting."},
    )
    Profile.objects.get_or_create(
        name="Standard",
        defaults={"is_admin": False, "mail_integration": True, "permissions": full,
                  "description": "Works with the records their role gives them."},
    )
    for module in MODULES:
        ModuleDefault.objects.get_or_create(module=module, defaults={"level": "private"})


class Migration(migrations.Migration):
    dependencies = [("people", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
