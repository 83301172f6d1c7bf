"""Back-office registrations for CRM records and pipelines."""

from __future__ import annotations

from django.contrib import admin

from crmail.crm.models import Account, Contact, Deal, EmailAddress, Lead, Pipeline, Stage


class EmailAddressInline(admin.TabularInline):
    model = EmailAddress
    extra = 0
    fields = ["address", "is_primary"]


class RecordAdmin(admin.ModelAdmin):
    list_select_related = ["owner"]
    list_filter = ["owner"]
    readonly_fields = ["created_by", "created_at", "modified_at"]
    autocomplete_fields = ["owner"]
    date_hierarchy = "modified_at"


@admin.register(Lead)
class LeadAdmin(RecordAdmin):
    list_display = ["last_name", "first_name", "company", "status", "owner", "modified_at"]
    list_filter = ["status", "owner"]
    search_fields = ["last_name", "first_name", "company", "emails__address"]
    inlines = [EmailAddressInline]


@admin.register(Contact)
class ContactAdmin(RecordAdmin):
    list_display = ["last_name", "first_name", "account", "title", "owner", "modified_at"]
    list_select_related = ["owner", "account"]
    search_fields = ["last_name", "first_name", "emails__address", "account__name"]
    autocomplete_fields = ["owner", "account"]
    inlines = [EmailAddressInline]


@admin.register(Account)
class AccountAdmin(RecordAdmin):
    list_display = ["name", "domain", "industry", "owner", "modified_at"]
    search_fields = ["name", "domain", "website"]


@admin.register(Deal)
class DealAdmin(RecordAdmin):
    list_display = ["name", "stage", "amount", "closing_date", "account", "owner", "modified_at"]
    list_select_related = ["owner", "stage", "account"]
    list_filter = ["pipeline", "stage", "owner"]
    search_fields = ["name", "account__name", "contact__last_name"]
    autocomplete_fields = ["owner", "account", "contact"]


@admin.register(EmailAddress)
class EmailAddressAdmin(admin.ModelAdmin):
    list_display = ["address", "is_primary", "contact", "lead"]
    search_fields = ["address"]
    list_select_related = ["contact", "lead"]
    raw_id_fields = ["contact", "lead"]


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    fields = ["name", "position", "probability", "kind"]


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default"]
    search_fields = ["name"]
    inlines = [StageInline]
