0return {}
