"""Route guide on swiftgrpc.aio: one RPC of each kind, server and client in one program.

    python3 route_guide.py

Serves RouteGuide on a free port with swiftgrpc.aio, then calls it with swiftgrpc.aio:
GetFeature (unary), ListFeatures (server streaming), RecordRoute (client streaming) and
RouteChat (bidi streaming)."""
import asyncio
import math

import protos  # noqa: F401
import route_guide_pb2 as pb
import route_guide_pb2_grpc
import swiftgrpc.aio

FEATURES = [pb.Feature(name=f"feature {i}", location=pb.Point(latitude=i * 10, longitude=-i * 10))
            for i in range(10)]


def distance(a, b):
    return int(math.hypot(a.latitude - b.latitude, a.longitude - b.longitude))


class RouteGuide(route_guide_pb2_grpc.RouteGuideServicer):
    async def GetFeature(self, request, context):
        for f in FEATURES:
            if f.location == request:
                return f
        return pb.Feature(name="", location=request)

    async def ListFeatures(self, request, context):
        lo, hi = request.lo, request.hi
        for f in FEATURES:
            if lo.latitude <= f.location.latitude <= hi.latitude:
                yield f

    async def RecordRoute(self, request_iterator, context):
        count, features, dist, prev = 0, 0, 0, None
        async for point in request_iterator:
            count += 1
            features += any(f.location == point for f in FEATURES)
            if prev is not None:
                dist += distance(prev, point)
            prev = point
        return pb.RouteSummary(point_count=count, feature_count=features, distance=dist)

    async def RouteChat(self, request_iterator, context):
        notes = {}
        async for note in request_iterator:
            key = (note.location.latitude, note.location.longitude)
            for earlier in notes.get(key, []):
                yield earlier
            notes.setdefault(key, []).append(note)


async def main():
    server = swiftgrpc.aio.server()
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(RouteGuide(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with swiftgrpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = route_guide_pb2_grpc.RouteGuideStub(channel)
        f = await stub.GetFeature(pb.Point(latitude=30, longitude=-30))
        print(f"GetFeature: {f.name}")
        names = [f.name async for f in stub.ListFeatures(
            pb.Rectangle(lo=pb.Point(latitude=20), hi=pb.Point(latitude=50)))]
        print(f"ListFeatures: {len(names)} features: {', '.join(names)}")

        async def route():
            for i in range(5):
                yield pb.Point(latitude=i * 10, longitude=-i * 10)
        s = await stub.RecordRoute(route())
        print(f"RecordRoute: {s.point_count} points, {s.feature_count} features, distance {s.distance}")

        async def chat():
            for msg in ("first", "second", "third"):
                yield pb.RouteNote(location=pb.Point(latitude=1, longitude=1), message=msg)
        replies = [n.message async for n in stub.RouteChat(chat())]
        print(f"RouteChat: {replies}")
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(main())
