from subscribers.models import Subscriber


def test_owner_adds_a_subscriber_and_outsider_cannot_see_it(api, outsider_api, anon_api):
    response = api.post("/api/v1/subscribers/", {"list": "News", "email": "A@Example.com"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "a@example.com"
    sub_id = response.json()["id"]
    assert Subscriber.objects.get(pk=sub_id).list.subscriber_count == 1
    assert outsider_api.get(f"/api/v1/subscribers/{sub_id}").status_code == 404
    assert anon_api.get(f"/api/v1/subscribers/{sub_id}").status_code == 401
