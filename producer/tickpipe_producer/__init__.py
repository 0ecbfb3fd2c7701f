"""The producer: Polygon websocket -> Kafka RAW_TOPIC, subscriptions from a CSV that can be edited live."""
