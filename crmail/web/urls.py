"""The pages of crmail. Every page but sign-in (and static files) requires a signed-in user."""

from __future__ import annotations

from django.conf import settings
from django.urls import URLPattern, path, register_converter

from crmail.people.models import MODULES
from crmail.web.views import (
    account,
    auth,
    compose,
    departing,
    events,
    home,
    insights,
    mailbox_labels,
    mailboxes,
    notifications,
    records,
    static,
    tasks,
    tracking,
    webhooks,
    workflow_import,
    workflows,
)
from crmail.web.views import domains as domain_pages
from crmail.web.views import dropbox as dropbox_pages
from crmail.web.views import email_templates as template_pages
from crmail.web.views import inbox as inbox_pages
from crmail.web.views import intelligence as intelligence_pages
from crmail.web.views import live_mail as live_pages
from crmail.web.views import message_deals as deal_pages
from crmail.web.views import message_mailbox as mailbox_actions
from crmail.web.views import message_sender as sender_pages
from crmail.web.views import message_tags as tag_pages
from crmail.web.views import messages as message_pages
from crmail.web.views import org_addresses as org_pages
from crmail.web.views import reports as report_pages
from crmail.web.views import search as search_pages
from crmail.web.views import settings as admin_pages
from crmail.web.views import sharing as sharing_pages
from crmail.web.views import storage as storage_pages


class ModuleConverter:
    """Only the four record modules match, so other top-level paths stay free."""

    regex = "|".join(MODULES)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModuleConverter, "module")

app_name = "web"

pages: list[URLPattern] = [
    path("", home.home, name="home"),
    path("sign-in/", auth.SignInView.as_view(), name="login"),
    path("sign-out/", auth.SignOutView.as_view(), name="logout"),
    # Your account
    path("account/", account.account, name="account"),
    path("account/reading/", account.account_reading, name="account_reading"),
    path("account/digest/", account.account_digest, name="account_digest"),
    path("account/password/", account.account_password, name="account_password"),
    path("account/tokens/", account.account_token_create, name="account_token_create"),
    path(
        "account/tokens/<int:pk>/revoke/",
        account.account_token_revoke,
        name="account_token_revoke",
    ),
    # Records
    path("<module:module>/", records.record_list, name="record_list"),
    path("<module:module>/new/", records.record_create, name="record_create"),
    path("<module:module>/<int:pk>/", records.record_detail, name="record_detail"),
    path("<module:module>/<int:pk>/edit/", records.record_edit, name="record_edit"),
    path("<module:module>/<int:pk>/delete/", records.record_delete, name="record_delete"),
    path(
        "<module:module>/<int:pk>/emails/<int:message_pk>/thread/",
        records.record_email_thread,
        name="record_email_thread",
    ),
    # Tasks on records (SPEC F13)
    path("<module:module>/<int:pk>/tasks/", tasks.task_add, name="task_add"),
    path("tasks/<int:pk>/", tasks.task_edit, name="task_edit"),
    path("tasks/<int:pk>/done/", tasks.task_done, name="task_done"),
    path("tasks/<int:pk>/delete/", tasks.task_delete, name="task_delete"),
    # Mail
    path("<module:module>/<int:pk>/email/", compose.compose, name="record_compose"),
    path("compose/", compose.compose, name="compose"),
    # Mail sent later, and what tracked mail points at (SPEC F9): no sign-in for the latter
    path("scheduled/", insights.scheduled_list, name="scheduled"),
    path("scheduled/<int:pk>/cancel/", insights.scheduled_cancel, name="scheduled_cancel"),
    path("t/o/<str:token>", tracking.tracking_pixel, name="tracking_pixel"),
    path("t/c/<str:token>", tracking.tracked_link, name="tracked_link"),
    # Email templates (SPEC F3)
    path("templates/", template_pages.template_list, name="templates"),
    path("templates/new/", template_pages.template_create, name="template_create"),
    path("templates/preview/", template_pages.template_preview, name="template_preview"),
    path("templates/<int:pk>/", template_pages.template_edit, name="template_edit"),
    path("templates/<int:pk>/delete/", template_pages.template_delete, name="template_delete"),
    path("search/", search_pages.search, name="search"),
    path("reports/", report_pages.reports, name="reports"),
    path("reports/save/", report_pages.report_save, name="report_save"),
    path("reports/<int:pk>/delete/", report_pages.report_delete, name="report_delete"),
    path("inbox/", inbox_pages.inbox_page, name="inbox"),
    path("inbox/act/", inbox_pages.inbox_act, name="inbox_act"),
    # Notifications (SPEC F7: customer mail alerts)
    path("notifications/", notifications.feed, name="notifications"),
    path("notifications/read/", notifications.mark_read, name="notifications_read"),
    path("notifications/stream/", notifications.stream, name="notifications_stream"),
    path("notifications/<int:pk>/", notifications.open_notification, name="notification_open"),
    # Opening a message (safe display: crmail.mail.display, docs/decisions/014)
    path("messages/<int:pk>/", message_pages.message_page, name="message"),
    path("messages/<int:pk>/body/", message_pages.message_body, name="message_body"),
    path("messages/<int:pk>/original/", message_pages.message_raw, name="message_raw"),
    path(
        "messages/<int:pk>/fetch-body/",
        storage_pages.message_fetch_body,
        name="message_fetch_body",
    ),
    path(
        "messages/<int:pk>/attachments/<int:part>/",
        message_pages.message_attachment,
        name="message_attachment",
    ),
    path(
        "messages/<int:pk>/inline/<int:part>/",
        message_pages.message_inline,
        name="message_inline",
    ),
    path("messages/remote-image/", message_pages.remote_image, name="remote_image"),
    # Mail asked live from mailboxes that keep no copy (privacy mode)
    path(
        "live/<int:mailbox_id>/<str:remote_id>/",
        live_pages.live_message_page,
        name="live_message",
    ),
    path(
        "live/<int:mailbox_id>/<str:remote_id>/body/",
        live_pages.live_message_body,
        name="live_message_body",
    ),
    path(
        "live/<int:mailbox_id>/<str:remote_id>/inline/<int:part>/",
        live_pages.live_message_inline,
        name="live_message_inline",
    ),
    path(
        "live/<int:mailbox_id>/<str:remote_id>/attachments/<int:part>/",
        live_pages.live_message_attachment,
        name="live_message_attachment",
    ),
    # Mailbox actions on one's own copy (SPEC F2): on the server first
    path("messages/<int:pk>/mark/", mailbox_actions.message_mark, name="message_mark"),
    path("messages/<int:pk>/move/", mailbox_actions.message_move, name="message_move"),
    path("messages/<int:pk>/delete/", mailbox_actions.message_delete, name="message_delete"),
    # Tags on a message (SPEC F13)
    path("messages/<int:pk>/tags/", tag_pages.message_tag, name="message_tag"),
    path(
        "messages/<int:pk>/intelligence/signature/",
        intelligence_pages.signature_answer,
        name="message_intel_signature",
    ),
    path(
        "messages/<int:pk>/intelligence/meetings/<int:index>/",
        intelligence_pages.meeting_answer,
        name="message_intel_meeting",
    ),
    path("messages/<int:pk>/tags/remove/", tag_pages.message_untag, name="message_untag"),
    # An unknown sender made a Lead or Contact, with its past mail (SPEC F14)
    path(
        "messages/<int:pk>/sender/<module:module>/",
        sender_pages.message_sender_create,
        name="message_sender_create",
    ),
    # A message's deals (SPEC F4): link by hand, move, unlink
    path("messages/<int:pk>/deals/link/", deal_pages.message_deal_link, name="message_deal_link"),
    path(
        "messages/<int:pk>/deals/choices/",
        deal_pages.message_deal_choices,
        name="message_deal_choices",
    ),
    path(
        "messages/<int:pk>/deals/<int:deal_pk>/move/",
        deal_pages.message_deal_move,
        name="message_deal_move",
    ),
    path(
        "messages/<int:pk>/deals/<int:deal_pk>/unlink/",
        deal_pages.message_deal_unlink,
        name="message_deal_unlink",
    ),
    # Administration
    path("settings/users/", admin_pages.users, name="users"),
    path("settings/users/new/", admin_pages.user_create, name="user_create"),
    path("settings/users/<int:pk>/", admin_pages.user_edit, name="user_edit"),
    path("settings/users/<int:pk>/active/", admin_pages.user_set_active, name="user_set_active"),
    path("settings/roles/", admin_pages.roles, name="roles"),
    path("settings/roles/new/", admin_pages.role_create, name="role_create"),
    path("settings/roles/<int:pk>/", admin_pages.role_edit, name="role_edit"),
    path("settings/profiles/", admin_pages.profiles, name="profiles"),
    path("settings/profiles/new/", admin_pages.profile_create, name="profile_create"),
    path("settings/profiles/<int:pk>/", admin_pages.profile_edit, name="profile_edit"),
    path("settings/groups/", admin_pages.groups, name="groups"),
    path("settings/groups/new/", admin_pages.group_create, name="group_create"),
    path("settings/groups/<int:pk>/", admin_pages.group_edit, name="group_edit"),
    path("settings/groups/<int:pk>/remove/", admin_pages.group_remove, name="group_remove"),
    path("settings/access/", admin_pages.access_defaults, name="access_defaults"),
    path("settings/users/<int:pk>/mail-lock/", admin_pages.user_mail_lock, name="user_mail_lock"),
    path("settings/events/", events.events_page, name="events"),
    # Organisation addresses (administrators; SPEC F16)
    path("settings/organisation-addresses/", org_pages.org_address_list, name="org_addresses"),
    path(
        "settings/organisation-addresses/new/",
        org_pages.org_address_create,
        name="org_address_create",
    ),
    path(
        "settings/organisation-addresses/<int:pk>/",
        org_pages.org_address_detail,
        name="org_address_detail",
    ),
    path(
        "settings/organisation-addresses/<int:pk>/code/",
        org_pages.org_address_code,
        name="org_address_code",
    ),
    path(
        "settings/organisation-addresses/<int:pk>/verify/",
        org_pages.org_address_verify,
        name="org_address_verify",
    ),
    path(
        "settings/organisation-addresses/<int:pk>/delete/",
        org_pages.org_address_delete,
        name="org_address_delete",
    ),
    # Email insights (administrators; SPEC F9)
    path("settings/insights/", insights.insights_settings, name="insights_settings"),
    # Email intelligence (administrators; SPEC F15)
    path(
        "settings/intelligence/",
        intelligence_pages.intelligence_settings,
        name="intelligence_settings",
    ),
    # Webhooks (administrators)
    path("settings/webhooks/", webhooks.webhook_list, name="webhooks"),
    path("settings/webhooks/new/", webhooks.webhook_create, name="webhook_create"),
    path("settings/webhooks/<int:pk>/", webhooks.webhook_detail, name="webhook_detail"),
    path("settings/webhooks/<int:pk>/edit/", webhooks.webhook_edit, name="webhook_edit"),
    path("settings/webhooks/<int:pk>/enabled/", webhooks.webhook_enabled, name="webhook_enabled"),
    path("settings/webhooks/<int:pk>/test/", webhooks.webhook_test, name="webhook_test"),
    path("settings/webhooks/<int:pk>/delete/", webhooks.webhook_delete, name="webhook_delete"),
    # Email workflows (SPEC F13): each user's rules, and the organisation's (administrators)
    path("settings/workflows/", workflows.workflow_list, name="workflows"),
    path("settings/workflows/new/", workflows.workflow_create, name="workflow_create"),
    path("settings/workflows/import/", workflow_import.workflow_import, name="workflow_import"),
    path("settings/workflows/<int:pk>/", workflows.workflow_edit, name="workflow_edit"),
    path(
        "settings/workflows/<int:pk>/enabled/",
        workflows.workflow_enabled,
        name="workflow_enabled",
    ),
    path("settings/workflows/<int:pk>/move/", workflows.workflow_move, name="workflow_move"),
    path("settings/workflows/<int:pk>/runs/", workflows.workflow_runs, name="workflow_runs"),
    path("settings/workflows/<int:pk>/delete/", workflows.workflow_delete, name="workflow_delete"),
    # Email storage (SPEC F11)
    path("settings/storage/", storage_pages.storage_page, name="storage"),
    # Departed users (SPEC F12)
    path("settings/departed/", departing.departed, name="departed"),
    path("settings/departed/<int:pk>/backup.mbox", departing.backup, name="departed_backup"),
    # Mail sharing (SPEC F5)
    path("settings/sharing/", sharing_pages.sharing_list, name="sharing_list"),
    path("settings/sharing/default/", sharing_pages.sharing_default, name="sharing_default"),
    path("settings/sharing/<int:pk>/", sharing_pages.sharing_edit, name="sharing_edit"),
    path("settings/sharing/<int:pk>/lock/", sharing_pages.sharing_lock, name="sharing_lock"),
    path("settings/mail/sharing/", sharing_pages.my_sharing, name="my_sharing"),
    path("settings/sharing/<int:pk>/stop/", sharing_pages.stop_sharing, name="sharing_stop"),
    path("settings/mail/sharing/stop/", sharing_pages.my_stop_sharing, name="my_sharing_stop"),
    path(
        "<module:module>/<int:pk>/mail-sharing/",
        sharing_pages.record_mail_sharing,
        name="record_mail_sharing",
    ),
    # Mailboxes (SPEC F1, F2)
    path("settings/mail/", mailboxes.mailbox_list, name="mailboxes"),
    path(
        "settings/mail/dropbox/regenerate/",
        dropbox_pages.dropbox_regenerate,
        name="dropbox_regenerate",
    ),
    path("settings/mail/dropbox/pattern/", dropbox_pages.dropbox_pattern, name="dropbox_pattern"),
    path("settings/dropbox/", dropbox_pages.dropbox_refusals, name="dropbox_refusals"),
    # Email authentication (SPEC F10)
    path("settings/domains/", domain_pages.domain_list, name="domains"),
    path("settings/domains/<int:pk>/", domain_pages.domain_detail, name="domain_detail"),
    path("settings/domains/<int:pk>/confirm/", domain_pages.domain_confirm, name="domain_confirm"),
    path("settings/domains/<int:pk>/code/", domain_pages.domain_resend, name="domain_resend"),
    path(
        "settings/domains/<int:pk>/validate/", domain_pages.domain_validate, name="domain_validate"
    ),
    path("settings/domains/<int:pk>/delete/", domain_pages.domain_delete, name="domain_delete"),
    path("settings/mail/connect/", mailboxes.mailbox_connect, name="mailbox_connect"),
    path("settings/mail/oauth/start/", mailboxes.mailbox_oauth_start, name="mailbox_oauth_start"),
    path(
        "settings/mail/oauth/callback/",
        mailboxes.mailbox_oauth_callback,
        name="mailbox_oauth_callback",
    ),
    path("settings/mail/<int:pk>/", mailboxes.mailbox_detail, name="mailbox_detail"),
    path("settings/mail/<int:pk>/status/", mailboxes.mailbox_status, name="mailbox_status"),
    path("settings/mail/<int:pk>/edit/", mailboxes.mailbox_edit, name="mailbox_edit"),
    path("settings/mail/<int:pk>/sync/", mailboxes.mailbox_sync, name="mailbox_sync"),
    path("settings/mail/<int:pk>/activate/", mailboxes.mailbox_activate, name="mailbox_activate"),
    path(
        "settings/mail/<int:pk>/deactivate/",
        mailboxes.mailbox_deactivate,
        name="mailbox_deactivate",
    ),
    path("settings/mail/<int:pk>/reauth/", mailboxes.mailbox_reauth, name="mailbox_reauth"),
    path("settings/mail/<int:pk>/labels/", mailbox_labels.mailbox_labels, name="mailbox_labels"),
    path(
        "settings/mail/<int:pk>/labels/moves/<int:move_pk>/undo/",
        mailbox_labels.mailbox_label_undo,
        name="mailbox_label_undo",
    ),
    path(
        "settings/mail/<int:pk>/sent-folder/",
        mailboxes.mailbox_sent_folder,
        name="mailbox_sent_folder",
    ),
    path(
        "settings/mail/<int:pk>/folders/<int:folder_pk>/",
        mailboxes.mailbox_folder,
        name="mailbox_folder",
    ),
]
urlpatterns: list[URLPattern] = list(pages)

# Static files under STATIC_URL when it is a path on this server (not another host).
_static_prefix = settings.STATIC_URL.strip("/")
if _static_prefix and "://" not in settings.STATIC_URL:
    urlpatterns.append(path(f"{_static_prefix}/<path:path>", static.serve, name="static"))
