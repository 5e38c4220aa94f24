"""The Playground in a real browser: multi-shot editing with a live total, the API's own validation
messages next to the field they name, images uploaded through /api/upload, elements."""

from __future__ import annotations

import re

import pytest
from dashboard_helpers import create_user, png_bytes, sign_in
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VIDEO_PLAYS = "() => { const v = document.querySelector('#pg-video-wrap video'); return !!v && v.readyState >= 2; }"


def field(page, path: str):
    return page.locator(f"[data-field='{path}']")


def open_playground(live_server, new_page):
    user = create_user(live_server, "pat@example.com", credits=50_000)
    key = live_server.create_key(name="pg", account=user["account"])
    page = new_page()
    sign_in(page, live_server, "pat@example.com")
    page.goto(f"{live_server.url}/dashboard/playground")
    page.fill("#pg-key", key)
    return page


def test_multi_shot_errors_show_next_to_their_fields_then_it_renders(live_server, new_page, shoot) -> None:
    page = open_playground(live_server, new_page)
    page.click("label.switch:has(#pg-multi)")
    expect(page.locator(".shot")).to_have_count(2)
    expect(page.locator("#pg-total")).to_have_text("5")
    page.click("#pg-add-shot")
    expect(page.locator("#pg-total")).to_have_text("8")
    page.locator(".shot").nth(2).locator("[data-remove]").click()
    expect(page.locator("#pg-total")).to_have_text("5")
    expect(page.locator("[data-test=cost]")).to_have_text("300")  # std, sound: 60/s × 5 s

    # Shot 2's prompt is blank and shot 1 runs 13 s: the API names the prompt first.
    page.locator(".shot").nth(0).locator("textarea").fill("A woman walks into a coffee shop")
    page.locator(".shot").nth(0).locator("input").fill("13")
    expect(page.locator("#pg-total")).to_have_text("15")
    page.click("#pg-submit")
    expect(field(page, "multi_prompt[1].prompt").locator(".field-error")).to_have_text(
        "multi_prompt[1].prompt must not be blank"
    )
    expect(page.locator("#pg-error")).to_contain_text("see the highlighted field")
    shoot(page, "playground-validation")

    page.locator(".shot").nth(1).locator("textarea").fill("She sits by the window and smiles")
    page.click("#pg-submit")
    expect(field(page, "multi_prompt[0].duration").locator(".field-error")).to_have_text(
        "multi_prompt[0].duration must be an integer from 1 to 12"
    )
    expect(field(page, "multi_prompt[1].prompt").locator(".field-error")).to_have_count(0)

    page.locator(".shot").nth(0).locator("input").fill("2")
    expect(page.locator("[data-test=preview]")).to_contain_text('"multi_shots": true')
    page.click("#pg-submit")
    page.wait_for_function(VIDEO_PLAYS, timeout=120_000)
    expect(page.locator(".field-error")).to_have_count(0)
    assert page.evaluate("document.querySelector('#pg-video-wrap video').duration") == pytest.approx(4, abs=0.1)


def test_upload_an_image_and_generate_image_to_video(live_server, new_page, shoot) -> None:
    page = open_playground(live_server, new_page)
    page.fill("#pg-prompt", "The puppy looks up at the camera")
    page.fill("#pg-duration", "3")
    row = field(page, "image_urls[0]")

    # Not an image: refused by the server's sniffing, whatever the file is called.
    row.locator("input[type=file]").set_input_files(
        files=[{"name": "cat.png", "mimeType": "image/png", "buffer": b"just some text, not a picture"}]
    )
    expect(row.locator(".field-error")).to_have_text("file: not an image")

    portrait = png_bytes(96, 160, (230, 120, 40))
    row.locator("input[type=file]").set_input_files(
        files=[{"name": "puppy.png", "mimeType": "image/png", "buffer": portrait}]
    )
    expect(row.locator("input[type=url]")).to_have_value(
        re.compile(r"^http://127\.0\.0\.1:\d+/uploads/[\w-]{32}\.png$")
    )
    expect(row.locator(".field-error")).to_have_count(0)
    expect(page.locator("[data-test=preview]")).to_contain_text("/uploads/")

    # An element without its reference images: the API's message lands on the element's images.
    page.click("#pg-add-element")
    page.click("#pg-submit")
    expect(field(page, "happyhorse_elements[0].element_input_urls").locator(".field-error")).to_contain_text(
        "happyhorse_elements[0].element_input_urls takes 2 to 4 URLs"
    )
    page.locator(".element [data-remove]").first.click()

    page.click("#pg-submit")
    page.wait_for_function(VIDEO_PLAYS, timeout=120_000)
    size = page.evaluate(
        "(() => { const v = document.querySelector('#pg-video-wrap video'); return [v.videoWidth, v.videoHeight]; })()"
    )
    assert size[0] < size[1], f"a portrait image gives a portrait video, got {size}"
    shoot(page, "playground-image-to-video")


def test_the_form_takes_its_limits_from_the_server(live_server, new_page) -> None:
    from happyhorse import contract

    page = open_playground(live_server, new_page)
    low, high = contract.DURATION_RANGE
    expect(page.locator("#pg-duration")).to_have_attribute("min", str(low))
    expect(page.locator("#pg-duration")).to_have_attribute("max", str(high))
    expect(page.locator("#pg-duration")).to_have_value(str(contract.DEFAULT_DURATION))
    ratios = page.locator("input[name=aspect_ratio]")
    assert [ratios.nth(i).get_attribute("value") for i in range(ratios.count())] == list(contract.ASPECT_RATIOS)
    expect(page.locator("input[name=aspect_ratio]:checked")).to_have_value(contract.DEFAULT_ASPECT_RATIO)
    page.click("label.switch:has(#pg-multi)")
    shot = page.locator(".shot input[type=number]").first
    expect(shot).to_have_attribute("max", str(contract.SHOT_DURATION_RANGE[1]))
    for _ in range(contract.MAX_SHOTS):
        page.click("#pg-add-shot") if page.locator("#pg-add-shot").is_enabled() else None
    expect(page.locator(".shot")).to_have_count(contract.MAX_SHOTS)
    expect(page.locator("#pg-add-shot")).to_be_disabled()
