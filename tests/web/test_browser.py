"""What users click, in a real browser: signing in, contacts, access, adding a user."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crmail.people.models import User
from tests import factories as f

# The `app` fixture brings the live server with a transactional database.
pytestmark = pytest.mark.browser


def test_sign_in_create_a_contact_find_it_and_open_it(app):
    f.user("rep@crmail.test", name="Rex Rep")
    page = app.page

    app.go("/")
    expect(page).to_have_url(re.compile(r"/sign-in/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in to crmail")).to_be_visible()
    app.shot("sign-in")
    page.get_by_label("Email").fill("rep@crmail.test")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Rex Rep")).to_be_visible()

    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="New contact").click()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Email", exact=True).fill("not an address")
    page.get_by_role("button", name="Create contact").click()
    expect(page.locator(".field.has-error")).to_contain_text("is not a valid email address")
    app.shot("contact-form-error")
    page.get_by_label("Email", exact=True).fill("grace@navy.example")
    page.get_by_label("Other emails").fill("grace@yale.example")
    page.get_by_label("Title").fill("Rear Admiral")
    page.get_by_role("button", name="Create contact").click()
    expect(page.get_by_role("status")).to_contain_text("The contact Grace Hopper was created.")

    for n in range(3):
        f.contact(User.objects.get(email="rep@crmail.test"), last_name=f"Other{n}")
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Contacts").click()
    rows = page.locator("table.records tbody tr")
    expect(rows).to_have_count(4)
    page.get_by_label("Search contacts").fill("yale")  # the secondary address
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Grace Hopper")
    expect(page).to_have_url(re.compile(r"q=yale"))  # htmx kept the address in step
    app.shot("contact-list")
    rows.first.get_by_role("link", name="Grace Hopper").click()

    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    details = page.locator("dl.fields")
    expect(details).to_contain_text("grace@navy.example")
    expect(details).to_contain_text("grace@yale.example")
    expect(details).to_contain_text("Rear Admiral")
    expect(details).to_contain_text("Rex Rep")
    app.shot("contact-detail")
    assert page.js_errors == []


def test_sorting_and_paging_the_list_without_reloading(app):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    for n in range(30):
        f.account(rep, f"Company {n:02d}")
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    app.go("/accounts/")
    first_cell = page.locator("table.records tbody tr").first.locator("td").first
    expect(first_cell).to_have_text("Company 00")
    page.get_by_role("link", name="Name").click()  # already ascending: flips
    expect(first_cell).to_have_text("Company 29")
    page.get_by_role("link", name="Next →").click()
    expect(first_cell).to_have_text("Company 04")
    expect(page.locator(".pager")).to_contain_text("page 2 of 2")
    expect(page).to_have_url(re.compile(r"sort=-name.*page=2|page=2.*sort=-name"))
    assert page.js_errors == []


def test_a_rep_cannot_open_a_managers_contact(app):
    org = f.org()
    secret = f.contact(org.manager, "boss@client.example", last_name="Confidential")
    app.sign_in("rep@crmail.test", f.PASSWORD)
    response = app.go(f"/contacts/{secret.pk}/")
    assert response.status == 404
    expect(app.page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(app.page.locator("body")).not_to_contain_text("Confidential")
    app.go("/contacts/")
    expect(app.page.locator("main")).to_contain_text("No contacts yet.")


def test_an_admin_creates_a_user(app):
    f.org()
    app.sign_in("admin@crmail.test", f.PASSWORD)
    page = app.page
    app.admin_menu().get_by_role("link", name="Roles").click()
    expect(page.locator(".tree .tree").first).to_contain_text("Manager")  # nested under CEO
    app.shot("roles")
    app.admin_menu().get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Name").fill("Nina New")
    page.get_by_label("Email").fill("nina@crmail.test")
    page.get_by_label("Role").select_option(label="Manager East")
    page.get_by_label("Manager", exact=True).select_option(label="Eve East <east@crmail.test>")
    page.get_by_label("Password", exact=True).fill("a long enough passphrase")
    page.get_by_label("Password again").fill("a long enough passphrase")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("The user Nina New was added.")
    row = page.locator("tr", has_text="nina@crmail.test")
    expect(row).to_contain_text("Manager East")
    expect(row).to_contain_text("Active")

    app.sign_out()
    app.sign_in("nina@crmail.test", "a long enough passphrase")
    expect(page.get_by_role("heading", name="Hello, Nina New")).to_be_visible()
    expect(page.get_by_role("navigation", name="Administration")).to_have_count(0)


def test_the_top_bar_keeps_to_one_line_on_a_laptop_screen_whatever_the_name(app):
    # An administrator sees every menu; a long name is cut short, the address its title.
    f.user("admin@crmail.test", name="Alexandra Konstantinopoulou-Smith", admin=True)
    page = app.page
    app.sign_in("admin@crmail.test", f.PASSWORD)
    bar = page.locator("header.topbar")
    expect(page.get_by_role("link", name="Reports")).to_be_visible()
    assert bar.bounding_box()["height"] < 60  # one line of 52 px; a second doubles it
    who = page.locator("summary.who")
    expect(who).to_have_attribute("title", "admin@crmail.test")
    name = who.locator(".name")
    assert name.evaluate("e => e.scrollWidth > e.clientWidth")  # cut short, with an ellipsis
    app.shot("topbar-long-name")
    page.set_viewport_size({"width": 1024, "height": 860})  # narrower: two lines, nothing lost
    expect(page.get_by_role("link", name="Reports")).to_be_visible()
    expect(who).to_be_visible()
    # A phone: the links wrap rather than run off the edge, and the Administration menu
    # opens within the screen.
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.locator(".admin-menu:not(.user-menu) summary").click()
    menu = page.get_by_role("link", name="Email intelligence")
    expect(menu).to_be_visible()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    app.shot("topbar-phone-admin-menu")
